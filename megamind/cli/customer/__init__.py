"""The customer's commands: log in, find hardware, run images with their inputs and job
options, watch them through the queue, read their logs and results, cancel, restart and
remove them.

    session   the client, failures as exit codes, --json     (shared by all)
    account   login, logout
    hardware  hw, executors, images
    tasks     run, ps, inspect, restart, rm
    runspec   run's job options: requirements (also hw's filters), command, env, ports, limits
    taskview  a task for people: its state line, --wait, inspect's fields
    queue     queue, cancel
    output    logs, results
    inputs    upload (and run --input)
"""
