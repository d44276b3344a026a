# hostile: a busy infinite loop
# expect-message: did not finish within
def answer():
    while True:
        pass


def squares(n):
    x = 0
    while True:
        x += 1
