# expect.bash — the helpers the CLI tests share (sourced; not a test itself: ctest runs *.sh).
# The sourcing script sets T (a scratch directory) and fails=0 first.

# fail MESSAGE: count a failure and say what it was
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect STATUS CMD...: run, keep stdout/stderr in $T/out, $T/err, check the exit status
expect() {
    local want=$1; shift
    "$@" >"$T/out" 2>"$T/err"
    local got=$?
    if [ "$got" != "$want" ]; then
        fail "exit $got (want $want): $*"
        sed 's/^/    /' "$T/err" >&2
        return 1
    fi
    return 0
}

# err_has TEXT: the last command's stderr contains TEXT (fixed string)
err_has() { grep -qF -- "$1" "$T/err" || { fail "stderr lacks '$1':"; sed 's/^/    /' "$T/err" >&2; }; }
