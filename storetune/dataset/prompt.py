"""Moved to `storetune.chat.prompt` (the one renderer for build, train, eval and serve).

Re-exported for the importers other branches still have; remove once they import
`storetune.chat.prompt`.
"""

from storetune.chat.prompt import render_system_prompt, render_task_prompt  # noqa: F401
