# Addresses of the services scripts/services/*.sh start for tests (sourced by scripts/test.sh).
export SIBYL_TEST_REDIS_URL="${SIBYL_TEST_REDIS_URL:-redis://127.0.0.1:6399}"
export SIBYL_TEST_KAFKA_BROKERS="${SIBYL_TEST_KAFKA_BROKERS:-127.0.0.1:19092}"
export SIBYL_TEST_DATABASE_URL="${SIBYL_TEST_DATABASE_URL:-postgres://sibyl@127.0.0.1:55432/sibyl_test}"
export SIBYL_TEST_AWS_ENDPOINT="${SIBYL_TEST_AWS_ENDPOINT:-http://127.0.0.1:5055}"
