from storetune.cli import run

run()
