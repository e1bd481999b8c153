"""The customer's commands: log in, find hardware, run images with their inputs and job
options, watch them through the queue, read their logs and results, cancel, restart and
remove them; see what running costs and what was spent, and an owner what was earned.

    session   the client, failures as exit codes, --json     (shared by all)
    account   login, logout
    hardware  hw, executors
    images    images (publish, unpublish)
    push      push (a local image to the registry)
    tasks     run, ps, inspect, restart, rm
    runspec   run's options (estimate's too): requirements (also hw's filters), command, env, ports, limits
    spending  estimate (and run's estimate before it submits), account, spend-limit
    history   history, usage, earnings
    taskview  a task for people: its state line, --wait, inspect's fields
    queue     queue, cancel
    output    logs, results
    inputs    upload (and run --input)
"""
