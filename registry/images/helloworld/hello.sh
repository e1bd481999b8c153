#!/bin/sh
# Entrypoint of the helloworld example image (run by busybox sh).
# Prints a greeting, the params the customer passed, counts to 5 and exits 0.
# Every line goes to stdout, which is what gettasklogs shows.

# Deleting or restarting the task sends SIGTERM: say so and stop cleanly.
trap 'echo "stopped by SIGTERM"; exit 0' TERM

echo "Hello from Megamind!"
echo "task id: ${MEGAMIND_TASK_ID:-<none>}"
echo "params: ${MEGAMIND_PARAMS:-<empty>}"
echo "host: $(hostname)"
echo "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"

i=1
while [ "$i" -le 5 ]; do
    echo "count $i/5"
    [ "$i" -lt 5 ] && sleep 1
    i=$((i + 1))
done

echo "done"
exit 0
