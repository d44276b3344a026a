# hostile: a syntax error
# expect-message: SyntaxError
# expect-message: line 7
def answer():
    return 42

def squares(n)
    return [i * i for i in range(n)]
