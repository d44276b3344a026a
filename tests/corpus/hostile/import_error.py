# hostile: imports a module that does not exist
# expect-message: no_such_module_for_grading
import no_such_module_for_grading


def answer():
    return 42


def squares(n):
    return [i * i for i in range(n)]
