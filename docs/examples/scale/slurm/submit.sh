#!/bin/bash
# Submit the grading array, then the merge job, which starts when every array task has ended
# (afterany: a task whose grader could not grade a submission exits 1; merge still reports the rest).
set -euo pipefail
cd "$(dirname "$0")"
job=$(sbatch --parsable grade.sbatch)
job=${job%%;*}   # "id;cluster" on federated clusters
sbatch --parsable --dependency="afterany:$job" merge.sbatch
