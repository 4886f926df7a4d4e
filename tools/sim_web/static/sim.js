// The simulator page (docs/sim-live.md): shows what the simulated camera does and sends every
// control as one HTTP request. It never decides anything about the camera itself: the record LED,
// the state and the faults are what the firmware reported (status snapshots and trace lines), so
// the page shows the firmware's truth, including its delays.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const AUDIT_MAX = 50;            // the audit tail the page keeps
  const LOG_MAX = 80;              // the trace and applied-controls tails
  const FRAME_INTERVAL_MS = 200;   // about 5 pictures a second, as the doc asks
  const FLASH_MIN_MS = 150;        // a 40 ms tick of the buzzer must still be seen

  // Exposed for the browser tests and for poking at from the devtools console.
  const page = window.simPage = {
    status: null,
    ended: false,
    // The time (t_s) each indicator was last set from a trace line: a status snapshot older
    // than that line must not undo it (snapshots and trace lines travel the same stream, but
    // a snapshot is taken on its own schedule and may describe a moment before the line).
    setAt: { "led:record": -Infinity, "led:status": -Infinity, state: -Infinity },
    podSetAt: {},
    liveFrom: Infinity,            // trace lines older than this are history: not flashed or played
    ledLog: [],                    // [{name, on, at: performance.now(), source}]
    frames: 0,
    steps: [],                     // every applied control, as the stream reported it
    streamOpens: 0,
  };

  // ---- requests ---------------------------------------------------------------------------
  // One queue for every control: two edges sent in quick succession (a fast double press)
  // must reach the server in the order they happened, and the browser may otherwise put them
  // on two connections that race.
  let queue = Promise.resolve();

  function post(path, body) {
    const run = async () => {
      const r = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body || {}),
      });
      let data = null;
      try { data = await r.json(); } catch (_) { /* an empty or non-JSON answer */ }
      if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
      return data;
    };
    const result = queue.then(run, run);
    queue = result.catch(() => {});
    const what = body && (body.do || body.name) ? ` ${body.do || body.name}` : "";
    return result.then(
      (data) => { clearError(); return data; },   // an error shown is about an earlier control: it is over
      (err) => { say(`${path}${what}: ${err.message}`, true); return null; });
  }

  const step = (action, keys) => post("/api/step", Object.assign({ do: action }, keys || {}));

  let sayTimer = null;
  function say(text, isError) {
    const el = $("message");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
    clearTimeout(sayTimer);
    sayTimer = setTimeout(() => { el.textContent = ""; el.classList.remove("error"); }, isError ? 8000 : 3000);
  }

  function clearError() {
    const el = $("message");
    if (!el.classList.contains("error")) return;
    clearTimeout(sayTimer);
    el.textContent = "";
    el.classList.remove("error");
  }

  // A number from an input box, or undefined (with a message) when it is not one: the server
  // checks ranges, the page only refuses to send text where a number belongs.
  function numberFrom(id, name, optional) {
    const raw = $(id).value.trim();
    if (raw === "" && optional) return null;
    const value = Number(raw);
    if (raw === "" || !Number.isFinite(value)) { say(`${name}: enter a number`, true); return undefined; }
    return value;
  }

  // ---- the record button: real edges ------------------------------------------------------
  // The firmware's gesture decoder tells a press from a double press from a hold by the edges'
  // timing, so the page sends each edge as it happens and nothing else.
  let recordHeldBy = null;   // "mouse", "touch" or "key" while the page holds the contact closed

  function recordEdge(active, source) {
    if (page.ended) return;
    if (active) {
      if (recordHeldBy) return;
      recordHeldBy = source;
    } else {
      if (recordHeldBy !== source) return;
      recordHeldBy = null;
    }
    $("btn-record").classList.toggle("pressed", active);
    post("/api/input", { name: "record", active });
  }

  function setupRecordButton() {
    const btn = $("btn-record");
    btn.addEventListener("mousedown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();          // no focus ring, no text selection while held
      recordEdge(true, "mouse");
    });
    // Released anywhere: a contact must never stay closed because the pointer left the button.
    window.addEventListener("mouseup", (e) => { if (e.button === 0) recordEdge(false, "mouse"); });
    btn.addEventListener("touchstart", (e) => { e.preventDefault(); recordEdge(true, "touch"); }, { passive: false });
    btn.addEventListener("touchend", (e) => { e.preventDefault(); recordEdge(false, "touch"); }, { passive: false });
    btn.addEventListener("touchcancel", () => recordEdge(false, "touch"));
    // A key released while the window was in the background is never seen: let go then.
    window.addEventListener("blur", () => { if (recordHeldBy) recordEdge(false, recordHeldBy); });
  }

  const typing = (el) => el && (el.tagName === "INPUT" || el.tagName === "SELECT" || el.tagName === "TEXTAREA");

  function setupKeys() {
    document.addEventListener("keydown", (e) => {
      if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.code === "Space") {
        e.preventDefault();        // no page scroll, no activation of a focused button
        if (!e.repeat) recordEdge(true, "key");
        return;
      }
      if (e.repeat || page.ended) return;
      switch (e.key.toLowerCase()) {
        case "d": $("btn-double").click(); break;
        case "h": $("btn-hold").click(); break;
        case "c": $("btn-cord").click(); break;
        case "p": togglePower(); break;
        default: return;
      }
      e.preventDefault();
    });
    document.addEventListener("keyup", (e) => {
      if (e.code !== "Space" || typing(e.target)) return;
      e.preventDefault();
      recordEdge(false, "key");
    });
  }

  // ---- controls -----------------------------------------------------------------------------
  function holdSeconds() { return numberFrom("hold-s", "hold_s"); }

  function togglePower() {
    if (page.status && page.status.powered === false) step("power.restore");
    else step("power.cut", { mode: $("power-mode").value });
  }

  function setupControls() {
    $("btn-press").addEventListener("click", () => step("button.press"));
    $("btn-double").addEventListener("click", () => step("button.double_press"));
    $("btn-hold").addEventListener("click", () => {
      const hold_s = holdSeconds();
      if (hold_s !== undefined) step("button.hold", { hold_s });
    });
    $("hold-s").addEventListener("input", () => { $("hold-label").textContent = $("hold-s").value || "?"; });

    // Toggles follow what the simulator reports (status.camera_connected, status.mic_failed),
    // so the button always offers the opposite of the world's actual state.
    $("btn-cord").addEventListener("click", (e) => step(e.currentTarget.dataset.action));
    $("btn-mic").addEventListener("click", (e) => step(e.currentTarget.dataset.action));

    $("btn-storage-fill").addEventListener("click", () => {
      const free_bytes = numberFrom("storage-free-bytes", "free_bytes");
      if (free_bytes !== undefined) step("storage.fill", { free_bytes });
    });
    $("btn-storage-fail").addEventListener("click", () => {
      const keys = { errno: $("storage-errno").value, op: $("storage-op").value };
      const after_bytes = numberFrom("storage-after-bytes", "after_bytes", true);
      const count = numberFrom("storage-count", "count", true);
      if (after_bytes === undefined || count === undefined) return;
      if (after_bytes !== null) keys.after_bytes = after_bytes;
      if (count !== null) keys.count = count;
      step("storage.fail", keys);
    });
    $("btn-storage-heal").addEventListener("click", () => step("storage.heal"));

    $("btn-battery-set").addEventListener("click", () => {
      const percent = numberFrom("battery-percent", "percent");
      if (percent !== undefined) step("battery.set", { percent });
    });
    $("btn-battery-drain").addEventListener("click", () => {
      const rate = numberFrom("battery-rate", "rate_pct_per_min");
      if (rate !== undefined) step("battery.drain", { rate_pct_per_min: rate });
    });

    $("btn-clock-jump").addEventListener("click", () => {
      const delta_s = numberFrom("clock-delta", "delta_s");
      if (delta_s !== undefined) step("clock.jump", { delta_s });
    });
    $("btn-clock-set").addEventListener("click", () => {
      const utc = $("clock-utc").value.trim();
      if (!utc) { say("utc: enter an RFC 3339 time, e.g. 2026-03-01T12:00:00Z", true); return; }
      step("clock.set", { utc });
    });

    $("btn-power-cut").addEventListener("click", () => step("power.cut", { mode: $("power-mode").value }));
    $("btn-power-restore").addEventListener("click", () => step("power.restore"));

    $("btn-end").addEventListener("click", async () => {
      $("btn-end").disabled = true;
      const res = await post("/api/end", {});
      if (res) say(`run ended at t = ${fmt(res.t_s, 1)} s`);
      else $("btn-end").disabled = page.ended;
      refreshStatus();
    });
    $("btn-export").addEventListener("click", runExport);
  }

  // ---- triggers and pods (built from what the status lists) ---------------------------------
  let triggerNames = "";
  function renderTriggers(inputs) {
    const names = Object.keys(inputs || {}).filter((n) => n !== "record").sort();
    const box = $("triggers");
    if (names.join("\n") !== triggerNames) {
      triggerNames = names.join("\n");
      box.replaceChildren();
      if (!names.length) box.innerHTML = '<span class="dim">none (bwc sim --trigger NAME)</span>';
      for (const name of names) {
        const b = document.createElement("button");
        b.type = "button";
        b.id = `trigger-${name}`;
        b.dataset.name = name;
        b.title = "the trigger line's contact: click to close it, click again to open it";
        b.addEventListener("click", () => {
          const now = page.status && page.status.inputs ? !!page.status.inputs[name] : false;
          post("/api/input", { name, active: !now });
        });
        box.appendChild(b);
      }
    }
    for (const name of names) {
      const b = $(`trigger-${name}`);
      const on = !!inputs[name];
      b.classList.toggle("on", on);
      b.dataset.active = String(on);
      b.textContent = `${name}: ${on ? "ON" : "off"}`;
    }
  }

  let podNames = "";
  function renderPods(pods) {
    const names = Object.keys(pods || {}).sort();
    if (names.join("\n") !== podNames) {
      podNames = names.join("\n");
      const leds = $("pods");
      const ctl = $("pod-controls");
      leds.replaceChildren();
      ctl.replaceChildren();
      if (!names.length) ctl.innerHTML = '<span class="dim">no pods (bwc sim --pod POD_ID)</span>';
      for (const name of names) {
        const p = document.createElement("div");
        p.className = "pod";
        p.id = `pod-${name}`;
        p.innerHTML = `<div class="led" id="pod-led-${name}" data-colour="off"></div>
          <span>${escapeHtml(name)} <small class="dim" id="pod-shown-${name}"></small></span>`;
        leds.appendChild(p);

        const c = document.createElement("div");
        c.className = "row pod-ctl";
        c.innerHTML = `<b>${escapeHtml(name)}</b>`;
        const add = (id, label, fn) => {
          const b = document.createElement("button");
          b.type = "button";
          b.id = id;
          b.textContent = label;
          b.addEventListener("click", fn);
          c.appendChild(b);
        };
        add(`pod-press-${name}`, "press", () => step("pod.press", { target: name }));
        add(`pod-double-${name}`, "double press", () => step("pod.double_press", { target: name }));
        add(`pod-hold-${name}`, "hold", () => {
          const hold_s = holdSeconds();
          if (hold_s !== undefined) step("pod.hold", { target: name, hold_s });
        });
        add(`pod-link-drop-${name}`, "drop link", () => step("link.drop", { target: name }));
        add(`pod-link-restore-${name}`, "restore link", () => step("link.restore", { target: name }));
        ctl.appendChild(c);
      }
    }
  }

  function setPodLed(name, colour, shown) {
    const led = $(`pod-led-${name}`);
    if (!led) return;
    led.dataset.colour = colour || "off";
    led.title = `${name}: ${colour || "off"}`;
    if (shown !== undefined) $(`pod-shown-${name}`).textContent = shown || "";
  }

  // ---- indicators -----------------------------------------------------------------------------
  function setLed(name, on, source) {
    const el = $(`${name}-led`);
    if (!el) return;
    const value = String(!!on);
    if (el.dataset.on === value) return;
    el.dataset.on = value;
    el.classList.toggle("on", !!on);
    page.ledLog.push({ name, on: !!on, at: performance.now(), source });
  }

  const flashTimers = {};
  function flash(id, durationMs) {
    const el = $(id);
    el.dataset.active = "true";
    clearTimeout(flashTimers[id]);
    flashTimers[id] = setTimeout(() => { el.dataset.active = "false"; }, Math.max(FLASH_MIN_MS, durationMs || 0));
  }

  // The buzzer through Web Audio. Browsers refuse sound until the user has touched the page:
  // then the tone is only flashed, which is all the page promises.
  let audioCtx = null;
  function audio() {
    if (!audioCtx && window.AudioContext) {
      try { audioCtx = new AudioContext(); } catch (_) { audioCtx = null; }
    }
    return audioCtx;
  }
  document.addEventListener("pointerdown", () => { const c = audio(); if (c && c.state !== "running") c.resume().catch(() => {}); });

  function playTone(frequency, durationMs) {
    if (!$("sound-on").checked) return;
    const c = audio();
    if (!c || c.state !== "running") return;
    const osc = c.createOscillator();
    const gain = c.createGain();
    osc.type = "square";
    osc.frequency.value = frequency;
    gain.gain.value = 0.04;
    osc.connect(gain).connect(c.destination);
    const t = c.currentTime;
    osc.start(t);
    osc.stop(t + durationMs / 1000);
  }

  const playing = new Set();
  function playSpeaker(clip) {
    if (!clip || !$("sound-on").checked) return;
    const a = new Audio(clip);
    playing.add(a);
    a.addEventListener("ended", () => playing.delete(a));
    a.play().catch(() => playing.delete(a));      // autoplay refused: the tag and the flash still show it
  }

  // The battery pulled: the camera's motor, buzzer and speaker stop with it.
  function silence() {
    for (const a of playing) a.pause();
    playing.clear();
    for (const id of Object.keys(flashTimers)) {
      clearTimeout(flashTimers[id]);
      $(id).dataset.active = "false";
    }
  }

  // ---- the stream -----------------------------------------------------------------------------
  function onTrace(line) {
    const live = line.t_s >= page.liveFrom;
    addLog("trace", traceText(line), line.kind);
    switch (line.kind) {
      case "led":
        page.setAt[`led:${line.name}`] = line.t_s;
        setLed(line.name, line.on, "trace");
        break;
      case "state":
        page.setAt.state = line.t_s;
        setState(line.to === "shutdown" ? "off" : line.to);
        break;
      case "vibrate":
        $("vibrate-info").textContent = `${line.duration_ms} ms`;
        if (live) flash("vibrate", line.duration_ms);
        break;
      case "tone":
        $("tone-info").textContent = `${line.frequency_hz} Hz ${line.duration_ms} ms`;
        if (live) { flash("tone", line.duration_ms); playTone(line.frequency_hz, line.duration_ms); }
        break;
      case "speaker":
        $("speaker-tag").textContent = line.tag ? line.tag.slice(0, 12) + "…" : "(untagged)";
        $("speaker-tag").title = line.tag || "no tag";
        if (live) { flash("speaker", line.duration_ms); playSpeaker(line.clip); }
        break;
      case "power":
        if (!line.on) silence();
        break;
      case "pod_led":
        page.podSetAt[line.pod] = line.t_s;
        setPodLed(line.pod, line.colour, line.shown);
        break;
      default:
        break;
    }
  }

  function traceText(l) {
    const skip = new Set(["t_s", "monotonic_us", "utc_us", "kind"]);
    const rest = Object.entries(l).filter(([k]) => !skip.has(k)).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    return [`<span class="t">${fmt(l.t_s, 3)}</span>`, `<b>${escapeHtml(l.kind)}</b>`, escapeHtml(rest.join(" "))].join(" ");
  }

  function onAudit(a) {
    const li = document.createElement("li");
    li.className = `audit-line ${a.verified ? "verified" : "unverified"}`;
    li.dataset.type = a.type;
    li.dataset.n = a.n;
    li.dataset.verified = String(!!a.verified);
    // A line that does not check is shown as written (the server sends its raw text only).
    const fields = a.fields ? JSON.stringify(a.fields) : (a.line || "");
    li.title = `${a.file || ""} #${a.n ?? "?"}: ${fields}`;
    li.innerHTML = `<span class="mark">${a.verified ? "✓" : "✗"}</span> <span class="t">${fmt(a.t_s, 3)}</span> ` +
      `#${escapeHtml(String(a.n ?? "?"))} <span class="type">${escapeHtml(a.type ?? "(does not verify)")}</span> ${escapeHtml(fields)}`;
    const list = $("audit");
    // A line the firmware wrote again (a retry after a failed write or sync) is read again by
    // the server's tail: one entry per file and number, the newest reading shown.
    const key = a.n == null ? null : `${a.file}#${a.n}`;
    const again = key && [...list.children].find((el) => el.dataset.key === key);
    if (key) li.dataset.key = key;
    if (again) { again.replaceWith(li); return; }
    list.appendChild(li);
    while (list.children.length > AUDIT_MAX) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  function onStep(s) {
    page.steps.push(s);
    const rest = Object.entries(s).filter(([k]) => k !== "t_s" && k !== "do").map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    addLog("steps", `<span class="t">${fmt(s.t_s, 3)}</span> <b>${escapeHtml(s.do)}</b> ${escapeHtml(rest.join(" "))}`, s.do);
  }

  function addLog(id, html, kind) {
    const list = $(id);
    const li = document.createElement("li");
    li.innerHTML = html;
    if (kind) li.dataset.kind = kind;
    list.appendChild(li);
    while (list.children.length > LOG_MAX) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  function parse(handler) {
    return (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch (_) { return; }
      handler(data);
    };
  }

  async function connect() {
    // What the stream replays first is history: take the present from a snapshot, so replayed
    // buzzes and announcements are listed but not flashed or played again.
    const s = await refreshStatus();
    page.liveFrom = s ? s.t_s : 0;
    const es = new EventSource("/api/events");
    es.addEventListener("open", () => {
      page.streamOpens += 1;
      if (page.streamOpens > 1) {
        // A reconnection replays everything again: start the lists afresh rather than twice.
        for (const id of ["audit", "steps", "trace"]) $(id).replaceChildren();
        page.liveFrom = page.status ? page.status.t_s : 0;
      }
      const c = $("conn");
      c.textContent = "stream: live";
      c.className = "hdr-item conn-ok";
    });
    es.addEventListener("error", () => {
      const c = $("conn");
      c.textContent = page.ended ? "stream: closed (the run has ended)" : "stream: reconnecting…";
      c.className = "hdr-item conn-wait";
    });
    es.addEventListener("trace", parse(onTrace));
    es.addEventListener("audit", parse(onAudit));
    es.addEventListener("step", parse(onStep));
    es.addEventListener("status", parse(applyStatus));
  }

  async function refreshStatus() {
    try {
      const r = await fetch("/api/status", { cache: "no-store" });
      if (!r.ok) return null;
      const s = await r.json();
      applyStatus(s);
      return s;
    } catch (_) {
      return null;
    }
  }

  // ---- the status snapshot ------------------------------------------------------------------
  function setState(state) {
    const el = $("state");
    el.dataset.state = state || "";
    el.textContent = state || "–";
  }

  function applyStatus(s) {
    if (page.status && s.t_s < page.status.t_s) return;   // an older snapshot (a refresh raced the stream)
    page.status = s;
    page.ended = s.run === "ended";

    $("t-s").textContent = fmt(s.t_s, 1);
    const run = $("run");
    run.dataset.run = s.run;
    run.textContent = s.run === "ended" ? "run ended" : (s.powered ? "running" : "running — no power");
    $("utc").textContent = s.utc_us == null ? "–" : new Date(s.utc_us / 1000).toISOString().replace("T", " ").replace("Z", " UTC");

    if (s.t_s >= page.setAt["led:record"]) setLed("record", s.record_led, "status");
    if (s.t_s >= page.setAt["led:status"]) setLed("status", s.status_led, "status");
    if (s.t_s >= page.setAt.state) setState(s.state);

    const faults = s.faults || [];
    $("faults").innerHTML = faults.length ? faults.map((f) => `<span class="fault" data-fault="${escapeHtml(f)}">${escapeHtml(f)}</span>`).join("") : '<span class="dim">none</span>';
    $("camera-alert").hidden = !faults.includes("camera_lost");
    $("powered").textContent = s.powered ? "on" : "OFF (battery pulled)";

    const held = s.pre_event_held_s, full = s.pre_event_s;
    $("pre-event-meter").max = full > 0 ? full : 1;
    $("pre-event-meter").value = held || 0;
    $("pre-event").textContent = held == null ? "–" : `${fmt(held, 1)} / ${fmt(full, 1)} s`;
    $("segment").textContent = s.segment == null ? "– (no event)" : String(s.segment);
    $("event-id").textContent = s.event_id == null ? "– (no event)" : s.event_id;
    $("committed-age").textContent = s.committed_age_ms == null ? "– (not recording)" : `${Math.round(s.committed_age_ms)} ms`;
    const bat = s.battery_pct == null ? "–" : `${fmt(s.battery_pct, 1)} %`;
    $("battery").textContent = `${bat}, ${s.battery_min == null ? "minutes left unknown (no drain measured yet)" : `${s.battery_min} min left`}`;
    $("storage").textContent = s.storage_min == null ? "unknown" : `${s.storage_min} min of recording`;
    $("parts").textContent = `camera ${s.camera_connected ? "connected" : "DISCONNECTED"}, microphone ${s.mic_failed ? "FAILED" : "ok"}`;
    const inputs = s.inputs || {};
    $("inputs").textContent = Object.keys(inputs).length ? Object.entries(inputs).map(([k, v]) => `${k} ${v ? "ON" : "off"}`).join(", ") : "–";

    // The view: greyed with NO SIGNAL while the cord is out, dark without power.
    const wrap = $("view-wrap");
    wrap.classList.toggle("no-signal", s.camera_connected === false);
    wrap.classList.toggle("off", !s.powered);
    $("no-signal").hidden = s.camera_connected !== false;
    $("off-overlay").hidden = s.powered || s.camera_connected === false;

    const cord = $("btn-cord");
    cord.dataset.action = s.camera_connected === false ? "camera.reconnect" : "camera.disconnect";
    cord.textContent = s.camera_connected === false ? "reconnect camera cord" : "pull camera cord";
    cord.classList.toggle("on", s.camera_connected === false);
    const mic = $("btn-mic");
    mic.dataset.action = s.mic_failed ? "mic.heal" : "mic.fail";
    mic.textContent = s.mic_failed ? "heal microphone" : "fail microphone";
    mic.classList.toggle("on", !!s.mic_failed);
    $("btn-power-cut").disabled = page.ended || !s.powered;
    $("btn-power-restore").disabled = page.ended || !!s.powered;

    renderTriggers(inputs);
    renderPods(s.pods);
    for (const [name, pod] of Object.entries(s.pods || {})) {
      if (s.t_s >= (page.podSetAt[name] ?? -Infinity)) setPodLed(name, pod.colour, pod.shown);
    }

    // After the end nothing drives the camera any more; only saving and exporting are left.
    for (const el of document.querySelectorAll("#controls button, #controls input, #controls select")) {
      if (el.id === "btn-export" || el.id === "btn-power-cut" || el.id === "btn-power-restore") continue;
      el.disabled = page.ended;
    }
    const exp = s.export || { available: false, why: "" };
    if (!exporting) $("btn-export").disabled = !exp.available;
    $("export-why").textContent = exp.available ? "the run has ended: verify the card and export its events" : (exp.why || "");
  }

  // ---- the camera view ------------------------------------------------------------------------
  let frameUrl = null;
  async function pollFrame() {
    const started = performance.now();
    try {
      const r = await fetch("/api/frame.jpg", { cache: "no-store" });
      if (r.status === 200) {
        const blob = await r.blob();
        const url = URL.createObjectURL(blob);
        const img = $("frame");
        const old = frameUrl;
        frameUrl = url;
        img.onload = () => { if (old) URL.revokeObjectURL(old); };
        img.src = url;
        page.frames += 1;
        $("no-frame").hidden = true;
        const us = r.headers.get("X-Frame-Monotonic-Us");
        $("frame-info").textContent = us ? `frame @ ${(Number(us) / 1e6).toFixed(3)} s monotonic` : "frame";
      }
    } catch (_) { /* the server is gone or busy: try again on the next tick */ }
    // After the end the picture no longer changes: look far less often.
    const interval = page.ended ? 2000 : FRAME_INTERVAL_MS;
    setTimeout(pollFrame, Math.max(0, interval - (performance.now() - started)));
  }

  // ---- verify and export ------------------------------------------------------------------------
  let exporting = false;
  async function runExport() {
    exporting = true;
    $("btn-export").disabled = true;
    $("export-why").textContent = "verifying and exporting…";
    const res = await post("/api/export", {});
    exporting = false;
    if (!res) { $("btn-export").disabled = false; $("export-why").textContent = "the export failed (see the message above)"; return; }
    $("export-why").textContent = "done: see below";
    renderExport(res);
  }

  function renderExport(res) {
    $("export-box").hidden = false;
    const v = res.verify || {};
    const outcome = $("verify-outcome");
    outcome.dataset.outcome = v.outcome || "";
    // bwc verify's exit code is what says good or bad: 0 authentic and complete (docs/tools.md).
    outcome.dataset.exitCode = String(v.exit_code);
    outcome.textContent = `${v.outcome || "?"} (exit ${v.exit_code})`;
    $("verify-report").textContent = v.report || "";

    const box = $("exports");
    box.replaceChildren();
    const exported = res.exported || [];
    if (!exported.length) box.innerHTML = '<p class="dim">no event was exported</p>';
    for (const item of exported) {
      const div = document.createElement("div");
      div.className = "export-item";
      div.dataset.eventId = item.event_id;
      const left = document.createElement("div");
      const video = document.createElement("video");
      video.controls = true;
      video.preload = "metadata";
      video.src = item.mp4;
      left.appendChild(video);
      const p = document.createElement("p");
      p.innerHTML = `event <span class="mono">${escapeHtml(item.event_id)}</span>, ${fmt(item.media_s, 1)} s of media — ` +
        `<a class="mp4-link" href="${escapeHtml(item.mp4)}" download>MP4</a> · <a class="sidecar-link" href="${escapeHtml(item.sidecar)}" download>sidecar</a>`;
      left.appendChild(p);
      const pre = document.createElement("pre");
      pre.className = "sidecar";
      pre.textContent = "loading the sidecar…";
      div.append(left, pre);
      box.appendChild(div);
      fetch(item.sidecar, { cache: "no-store" })
        .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`${r.status}`))))
        .then((json) => { pre.textContent = JSON.stringify(json, null, 2); })
        .catch((err) => { pre.textContent = `the sidecar could not be read: ${err.message}`; });
    }
    const notBox = $("not-exported");
    notBox.replaceChildren();
    if (res.error) {   // the export as a whole refused (the verification above still stands)
      const p = document.createElement("p");
      p.className = "not-exported";
      p.textContent = `export failed: ${res.error}`;
      notBox.appendChild(p);
    }
    for (const n of res.not_exported || []) {
      const p = document.createElement("p");
      p.className = "not-exported";
      p.textContent = `not exported: ${n.event_id} — ${n.code}: ${n.reason}`;
      notBox.appendChild(p);
    }
    $("export-box").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // ---- helpers ----------------------------------------------------------------------------------
  function fmt(x, digits) { return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–"; }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  setupRecordButton();
  setupKeys();
  setupControls();
  connect();
  pollFrame();
})();
