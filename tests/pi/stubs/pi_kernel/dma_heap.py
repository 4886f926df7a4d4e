"""A fake /dev/dma_heap for picamera2's DmaAllocator, its production allocator.

The boundary: picamera2.dma_heap opens the heap with `os.open` and allocates
with `fcntl.ioctl(DMA_HEAP_IOCTL_ALLOC)`; picamera2.allocators.dmaallocator
brackets CPU access with `fcntl.ioctl(DMA_BUF_IOCTL_SYNC)`. install() rebinds
`os` and `fcntl` in those two modules only: a heap open gives a memfd, an
allocation gives a memfd of the asked length (a dma-buf is a shareable,
mmap-able fd; a memfd is the same to user space), a sync is a no-op (memfd
memory is cache-coherent). DmaAllocator's own code, its mmaps and the fds it
hands libcamera are all real.
"""
from __future__ import annotations

import fcntl as real_fcntl
import os as real_os
from types import SimpleNamespace

HEAP_PREFIX = "/dev/dma_heap/"


class _OsWithHeap:
    """The os module, except that the DMA heap device opens."""

    def __getattr__(self, name):
        return getattr(real_os, name)

    @staticmethod
    def open(path, flags, mode=0o777, *, dir_fd=None):
        if str(path).startswith(HEAP_PREFIX):
            return real_os.memfd_create("dma_heap")
        return real_os.open(path, flags, mode, dir_fd=dir_fd)


def _heap_ioctl(fd, request, arg=0, mutate_flag=True):
    from picamera2.dma_heap import DMA_BUF_SET_NAME, DMA_HEAP_IOCTL_ALLOC
    if request == DMA_HEAP_IOCTL_ALLOC:
        buffer_fd = real_os.memfd_create("dmabuf")
        real_os.ftruncate(buffer_fd, arg.len)
        arg.fd = buffer_fd
        return 0
    if request == DMA_BUF_SET_NAME:
        return 0
    return real_fcntl.ioctl(fd, request, arg, mutate_flag)


def _sync_ioctl(fd, request, arg=0, mutate_flag=True):
    from picamera2.dma_heap import DMA_BUF_IOCTL_SYNC
    if request == DMA_BUF_IOCTL_SYNC:
        return 0
    return real_fcntl.ioctl(fd, request, arg, mutate_flag)


def install_heap(dma_heap_module) -> None:
    dma_heap_module.os = _OsWithHeap()
    dma_heap_module.fcntl = SimpleNamespace(ioctl=_heap_ioctl)


def install_sync(dmaallocator_module) -> None:
    dmaallocator_module.fcntl = SimpleNamespace(ioctl=_sync_ioctl)
