# hostile: connects to a port on the loopback interface (the test puts its listener's port here)
import socket

PORT = 0  # replaced by the test


def _connect():
    reached = []
    for host, family in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect((host, PORT))
                sock.sendall(b"escaped the sandbox\n")
                reached.append(host)
        except OSError as exc:
            print(f"{host}: {exc}")
    return reached


def answer():
    return _connect()


def squares(n):
    return _connect()
