"""What a task's container sees of the platform: its variables, its folders, its marks.

Written once here because the agent, the API, the CLI and the image guide all
speak of them.
"""

from __future__ import annotations

PARAMS_ENV = "MEGAMIND_PARAMS"  # the customer's params, unchanged
TASK_ENV = "MEGAMIND_TASK_ID"
INPUT_DIR = "/megamind/input"  # the customer's input files, each by its name
OUTPUT_DIR = "/megamind/output"  # what the task leaves here is its results
PROGRESS_PREFIX = "MEGAMIND_PROGRESS="  # a stdout line of this and a number 0-100 sets progress
