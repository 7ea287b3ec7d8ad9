#!/bin/sh
# Captures the wine-*.txt samples: real output of Wine's reg.exe, run the way the VMware
# Tools transport runs a command (cmd.exe /c <command line> > <file> 2>&1, the arguments
# split on single spaces), in a fresh Wine prefix that is deleted afterwards.
# Each file is named <name>.rc<exit code>.txt and keeps the CRLF line ends Wine wrote.
#
#   tests/unit/guest_samples/capture-wine.sh       (WINE=/path/to/wine64 to choose Wine)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
wine=${WINE:-$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)}
prefix=$(mktemp -d)
export WINEPREFIX="$prefix" WINEDEBUG=-all
cleanup() {
    wineserver -k >/dev/null 2>&1 || true
    rm -rf "$prefix"
}
trap cleanup EXIT

wineserver -p </dev/null >/dev/null 2>&1  # one server for every command, ended by cleanup
"$wine" wineboot -i </dev/null >/dev/null 2>&1

key='HKLM\System\CurrentControlSet\Services\Disk'

# capture NAME WORD...: run the words through cmd.exe /c, keep the output as NAME.rc<N>.txt
capture() {
    name=$1
    shift
    out="C:\\Windows\\Temp\\$name.txt"
    set +e
    "$wine" 'C:\Windows\System32\cmd.exe' /c "$@" '>' "$out" '2>&1'
    rc=$?
    set -e
    if [ "$name" != scratch ]; then
        rm -f "$here/$name".rc*.txt
        cp "$prefix/drive_c/windows/temp/$name.txt" "$here/$name.rc$rc.txt"
        echo "$name.rc$rc.txt"
    fi
}

# A fresh prefix has no Services\Disk key.
capture wine-query-key-missing reg.exe query "$key" /v TimeOutValue
capture scratch reg.exe add "$key" /f
capture wine-query-value-missing reg.exe query "$key" /v TimeOutValue
capture wine-add-success reg.exe add "$key" /v TimeOutValue /t REG_DWORD /d 60 /f
capture wine-query-60 reg.exe query "$key" /v TimeOutValue
capture scratch reg.exe add "$key" /v TimeOutValue /t REG_DWORD /d 190 /f
capture wine-query-190 reg.exe query "$key" /v TimeOutValue
capture scratch reg.exe add "$key" /v TimeOutValue /t REG_SZ /d 60 /f
capture wine-query-reg-sz reg.exe query "$key" /v TimeOutValue

# Quotes do not survive the trip: Wine rebuilds the Windows command line from its argv and
# escapes them as \", which reg.exe then reads as part of the key name.
set +e
"$wine" 'C:\Windows\System32\cmd.exe' /c \
    "reg.exe query \"$key\" /v TimeOutValue > C:\\Windows\\Temp\\quoted.txt 2>&1"
rc=$?
set -e
rm -f "$here"/wine-query-escaped-quotes.rc*.txt
cp "$prefix/drive_c/windows/temp/quoted.txt" "$here/wine-query-escaped-quotes.rc$rc.txt"
echo "wine-query-escaped-quotes.rc$rc.txt"
