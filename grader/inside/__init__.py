"""Code that runs *inside* a sandbox, in the student's processes, next to the student's code.

Nothing here imports the trusted side of the grader (the trusted side imports
``events`` and ``wire`` from here: plain data and its encoding). The sandbox copies this
package into its private folder as ``grader_inside`` and ``boot.py`` as
``grader_boot.py``; the trusted side only reads what these modules write.
"""
