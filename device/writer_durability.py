"""The segment writer's durability path (docs/format.md §3.3): encrypt what the muxer cut,
checkpoint it when due (caught up, or a backlog's bounded chunk, possibly in the
background), and publish what is on the card (committed_us, the durable listeners).

A part of SegmentWriter (device/writer.py), on its thread; split out only for length.
"""
from __future__ import annotations

from device.evidence.format import CHUNK_KIND_MEDIA
from device.writer_health import DurableMark
from device.writer_items import EventStop


class WriterDurability:
    def _delivered_ends(self) -> list[int | None]:
        """Monotonic ends of the newest video and audio the muxer has delivered."""
        event = self._event
        return [None if (s := event.muxer.delivered(kind)) is None else s[1] + event.origin_monotonic_us
                for kind in ("video", "audio")]

    def _note_committed(self, ends: list[int | None] | None = None) -> None:
        """What the muxer had delivered (`ends`: at a background checkpoint's signing) is
        now on the card: publish it (committed_us, the durable listeners)."""
        event = self._event
        self._health.set_committed(*(self._delivered_ends() if ends is None else ends))
        if self._durable_listeners:
            video_end_us, audio_end_us = self._health.committed()
            mark = DurableMark(event.start.event_id, event.segment.seq, event.start.activation_monotonic_us,
                               video_end_us, audio_end_us,
                               event.pre_event_video_end_us is None
                               or (video_end_us is not None and video_end_us >= event.pre_event_video_end_us))
            for listener in self._durable_listeners:
                self._notify(listener, mark)

    def _report_video(self, video_us: int) -> None:
        """on_committed, only when committed video advanced."""
        event = self._event
        if event is not None and event.video_muxed and \
                (event.reported_video_us is None or video_us > event.reported_video_us):
            event.reported_video_us = video_us
            self._notify(self._on_committed, video_us)

    def _flush_output(self, at_us: int, force_checkpoint: bool = False) -> bool:
        """Encrypt what the muxer cut; checkpoint it when due. True if a checkpoint ran."""
        event = self._event
        output = event.muxer.take_parts()
        if output:
            size_bytes = sum(len(part) for part in output)
            if self._free_space.after_unwritten(event.segment) - size_bytes < self._reserve_bytes:
                # FLT-2: what is left is the reserve that closes this segment cleanly.
                event.segment.add(CHUNK_KIND_MEDIA, output)
                self._stop_event(EventStop("storage", at_us, self._utc(at_us)), reason="storage_full")
                self._notify(lambda _: self._on_storage_full(), None)
                return False
            self._stage = "recording"
            event.segment.add(CHUNK_KIND_MEDIA, output)
            event.unsynced_media = True
        if not event.unsynced_media:
            return False
        if force_checkpoint or (not event.in_backlog and self._queue.empty()):
            self._checkpoint_media()
            return True
        if event.segment.pending_bytes >= event.chunk_bound_bytes:
            # The event's first chunk is synced here and now (first media durable at
            # once); later ones while behind overlap with encrypting the next.
            if event.chunk_bound_bytes == 0:
                self._checkpoint_media()
                return True
            self._checkpoint_media(background=True)
        return False

    def _checkpoint_media(self, background: bool = False) -> int | None:
        """Sign, write and sync the fragments added since the last checkpoint (§3.3).
        Called when the writer has caught up (the queue is empty: durable now, once a
        fragment in real time) or when a backlog's pending bytes reach the event's bound
        (the pre-event at a press: written in bounded chunks, each durable at once).
        `background`: a backlog's chunk is written and synced on a helper thread while
        this one muxes and encrypts the next (at most one at a time); it is published
        once finished (_finish_background). Returns the video time on_committed may
        report now (None for a background checkpoint)."""
        event = self._event
        self._finish_background()
        covered = (self._delivered_ends(), event.last_video_us)
        if background:
            event.segment.checkpoint_in_background(event.checkpoint_media_end_us())
        else:
            event.segment.checkpoint(event.checkpoint_media_end_us())
        event.unsynced_media = False
        self._free_space.forget()   # measured again at the next fragment
        event.grow_chunk_bound()
        if background:
            event.background = covered
            return None
        self._note_committed(covered[0])
        return covered[1]

    def _finish_background(self) -> None:
        """Wait for a checkpoint written in the background, then publish what it made
        durable (its write or sync error is raised here, as a storage fault)."""
        event = self._event
        if event is None or event.background is None:
            return
        (ends, video_us), event.background = event.background, None
        event.segment.finish()
        self._note_committed(ends)
        self._report_video(video_us)

    def _catch_up(self) -> None:
        """After any item: nothing queued behind it, so nothing may wait unsynced."""
        event = self._event
        if event is not None and (event.unsynced_media or event.background is not None) and self._queue.empty():
            self._stage = "recording"
            if event.unsynced_media:
                self._report_video(self._checkpoint_media())
            else:
                self._finish_background()
