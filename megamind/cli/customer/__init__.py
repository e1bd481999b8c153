"""The customer's commands: log in, find hardware, run images with their inputs, watch
them, read their logs and results, restart and remove them.

    session   the client, failures as exit codes, --json     (shared by all)
    account   login, logout
    hardware  hw, executors, images
    tasks     run, ps, inspect, restart, rm
    output    logs, results
    inputs    upload (and run --input)
"""
