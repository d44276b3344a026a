"""Reference of the tiny greet assignment (tests of `grader mutants`)."""


def greet(name, times=2):
    lines = []
    for _ in range(times):
        lines.append(f"Hello, {name}!")
    return lines


def shout(name):
    print(f"{name.upper()}!")


if __name__ == "__main__":
    print(greet("world"))
