#!/usr/bin/env bash
# Rebuilds dist/ from src/ and fails when it differs from the committed dist/: the runner
# executes the committed bundle, so it must be exactly what the sources build to. A file the
# build adds that is not committed counts as a difference too. Used by CI and by the release.
set -euo pipefail
cd "$(dirname "$0")/.."

npm run bundle >/dev/null
if [ ! -d dist/ ]; then
  echo "::error::npm run bundle did not produce dist/"
  exit 1
fi
untracked="$(git ls-files --others --exclude-standard -- dist/)"
if ! git diff --exit-code --quiet --ignore-space-at-eol --text -- dist/ || [ -n "$untracked" ]; then
  echo "::error::dist/ is out of date: run 'npm run bundle' and commit the result"
  git diff --stat --ignore-space-at-eol --text -- dist/
  if [ -n "$untracked" ]; then
    echo "Not committed:"
    echo "$untracked"
  fi
  exit 1
fi
echo "dist/ matches a fresh build of src/"
