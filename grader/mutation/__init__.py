"""Mutation testing of an assignment's checks (``grader mutants``); runs in the controller.

``operators`` holds the mutation operators (plain ast transforms, :mod:`grader.mutation.sites` the
helpers they use), ``mutants`` makes the mutants of a reference, ``config`` reads the ``[mutants]``
table of ``assignment.toml``, ``run`` grades them with the batch machinery and ``report`` writes the
terminal table, the JSON and the HTML page. Like ``grader/grading``, it never imports the pytest side
or the sandbox.
"""
