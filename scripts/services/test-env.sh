# Addresses of the services scripts/services/*.sh start for tests (sourced by scripts/test.sh). Every port is below
# the kernel's ephemeral range (32768-60999 here), where an outgoing connection could already hold it; set any of
# these to move a service (the scripts start it where the variable says).
export SIBYL_TEST_REDIS_URL="${SIBYL_TEST_REDIS_URL:-redis://127.0.0.1:6399}"
export SIBYL_TEST_KAFKA_BROKERS="${SIBYL_TEST_KAFKA_BROKERS:-127.0.0.1:19092}"
export SIBYL_TEST_DATABASE_URL="${SIBYL_TEST_DATABASE_URL:-postgres://sibyl@127.0.0.1:25432/sibyl_test}"
export SIBYL_TEST_AWS_ENDPOINT="${SIBYL_TEST_AWS_ENDPOINT:-http://127.0.0.1:5055}"
