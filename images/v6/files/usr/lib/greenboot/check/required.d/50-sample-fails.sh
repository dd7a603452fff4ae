# v6: a required health check that always fails, so the update never reaches a healthy boot:
# the host reboots until the boot loader falls back to the previous deployment.
echo "sample required check: starting"
echo "sample required check: this image is broken on purpose (v6)"
exit 1
