#!/usr/bin/env bash
# Regenerates protocol/gen/ from the Thrift IDL. The generated code is committed, so a
# build needs no Thrift compiler; run this (`npm run gen:thrift`) after editing an IDL.
# Needs the Apache Thrift compiler 0.17 or newer: apt-get install -y thrift-compiler
set -euo pipefail
cd "$(dirname "$0")"
command -v thrift >/dev/null || { echo "gen.sh: the thrift compiler is missing (apt-get install -y thrift-compiler)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p gen
for idl in *.thrift; do
  base=${idl%.thrift}
  thrift --gen js:node,es6,ts -out "$tmp" "$idl"
  # The package is ESM: the CommonJS output becomes .cjs with a .d.cts beside it, and the
  # declarations get the `export` keywords and read()/write() that the 0.17 generator leaves out.
  mv "$tmp/${base}_types.js" "gen/${base}_types.cjs"
  sed -e 's/^declare class /export declare class /' -e 's/^declare const /export declare const /' \
      -e 's/^declare enum /export declare enum /' \
      -e 's/^\(      constructor(.*\)$/\1\n      read(input: thrift.TProtocol): void;\n      write(output: thrift.TProtocol): void;/' \
      "$tmp/${base}_types.d.ts" > "gen/${base}_types.d.cts"
done
echo "gen.sh: regenerated $(ls gen | wc -l) files in protocol/gen/"
