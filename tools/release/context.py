"""The context statement's timeline (docs/release.md §4.3): what the camera itself recorded
about the event, in media seconds, from the export sidecar's signed metadata, so a
release never travels as "video alone without explanation"."""
from __future__ import annotations


def timeline(sidecar: dict) -> dict:
    items: list[dict] = []
    activation = sidecar.get("activation")
    if isinstance(activation, dict):
        items.append({"media_s": _s(activation.get("media_us")), "what": "activation",
                      "source": activation.get("source"), "pre_event_s": activation.get("pre_event_s")})
    for marker in sidecar.get("markers") or []:
        if isinstance(marker, dict):
            items.append({"media_s": _s(marker.get("media_us")), "what": "marker", "source": marker.get("source")})
    for notice in sidecar.get("announcements") or []:
        if isinstance(notice, dict):
            items.append({"media_s": notice.get("media_s"), "what": "announcement", "status": notice.get("status"),
                          "language": notice.get("language"), "found_in_audio": notice.get("found")})
    for gap in sidecar.get("media_gaps") or []:
        if isinstance(gap, dict):
            items.append({"media_s": gap.get("start_s"), "what": f"{gap.get('track')} lost",
                          "until_s": gap.get("end_s")})
    deactivation = sidecar.get("deactivation")
    if isinstance(deactivation, dict):
        items.append({"media_s": _s(deactivation.get("media_us")), "what": "deactivation",
                      "source": deactivation.get("source")})
    items.sort(key=lambda i: (i["media_s"] is None, i["media_s"] or 0.0))
    return {"origin_utc": sidecar.get("origin_utc"), "origin_utc_trusted": sidecar.get("origin_utc_trusted"),
            "media_s": sidecar.get("media_s"), "events": items,
            "verification": (sidecar.get("verification") or {}).get("outcome")}


def _s(media_us: object) -> float | None:
    return media_us / 1e6 if isinstance(media_us, (int, float)) and not isinstance(media_us, bool) else None
