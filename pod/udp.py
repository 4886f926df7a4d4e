"""A non-blocking UDP datagram socket for CPython and MicroPython (docs/link.md §9).

Send never blocks and never raises for a lost or unreachable peer: the link's retries
and freshness deal with loss, and a pod must not stop on a Wi-Fi hiccup. Receive returns
None at once when nothing waits. Addresses are "host:port" strings.
"""
import socket

MAX_DATAGRAM_BYTES = 2048   # the link's frames are at most 78 bytes; longer is dropped
MAX_DISCARDS_PER_CALL = 16  # oversize datagrams dropped per receive() before it returns


def resolve(host, port):
    """A sockaddr for host:port as this interpreter's socket module wants it."""
    return socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]


def address_text(sockaddr):
    """'host:port' of a sockaddr: a tuple on CPython, raw sockaddr_in bytes on
    MicroPython's unix port."""
    if isinstance(sockaddr, tuple):
        return "%s:%d" % (sockaddr[0], sockaddr[1])
    b = bytes(sockaddr)
    return "%d.%d.%d.%d:%d" % (b[4], b[5], b[6], b[7], (b[2] << 8) | b[3])


class UdpSocket:
    def __init__(self, bind_host="0.0.0.0", bind_port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(resolve(bind_host, bind_port))
        self.sock.setblocking(False)
        self.send_errors = 0

    @property
    def port(self):
        """The bound port (CPython only: MicroPython sockets have no getsockname)."""
        return self.sock.getsockname()[1]

    def send(self, data, sockaddr):
        try:
            self.sock.sendto(data, sockaddr)
        except OSError:
            # EAGAIN (buffer full), ECONNREFUSED (an ICMP from an earlier send),
            # EHOSTUNREACH (Wi-Fi down): all are loss, which the link tolerates.
            self.send_errors += 1

    def receive(self):
        """(bytes, sockaddr) of one waiting datagram, or None."""
        for _ in range(MAX_DISCARDS_PER_CALL):
            try:
                data, sockaddr = self.sock.recvfrom(MAX_DATAGRAM_BYTES)
            except OSError:
                # EAGAIN: nothing waiting. (ECONNREFUSED from an earlier send also lands
                # here on Linux; there is nothing to read either way.)
                return None
            if len(data) < MAX_DATAGRAM_BYTES:
                return data, sockaddr
        return None   # a flood of oversize datagrams must not hold the main loop here

    def close(self):
        self.sock.close()
