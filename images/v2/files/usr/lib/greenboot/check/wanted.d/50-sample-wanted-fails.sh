# Added in v2: a wanted health check that always fails. A failed wanted check is only logged:
# the boot is still blessed and nothing rolls back.
echo "sample wanted check: this check fails on purpose"
exit 1
