// A bad flag, pass or pass option: one line `oi-opt: error: ...` on stderr and
// exit status 2, checked before the input is read. Bad input: one
// `file:line:col: error: message` and exit status 1. (`bash -c '...; echo exit $?'`
// puts the exit status in the checked output.)
//
// RUN: bash -c 'oi-opt %s --bogus; echo exit $?' 2>&1 | filecheck %s --check-prefix=FLAG
// RUN: bash -c 'oi-opt %s --canonicalize=nosuch=1; echo exit $?' 2>&1 | filecheck %s --check-prefix=OPTION
// RUN: bash -c 'oi-opt %s -p canonicalize,nosuch; echo exit $?' 2>&1 | filecheck %s --check-prefix=PASS
// RUN: bash -c 'oi-opt %s -p; echo exit $?' 2>&1 | filecheck %s --check-prefix=NOARG
// RUN: bash -c 'oi-opt %s -t spirv; echo exit $?' 2>&1 | filecheck %s --check-prefix=TARGET
// RUN: bash -c 'oi-opt %s --load-pass-plugin=%t.nonexistent.py; echo exit $?' 2>&1 | filecheck %s --check-prefix=PLUGIN
// A flag error wins over an unreadable input.
// RUN: bash -c 'oi-opt %t.nonexistent.mlir --bogus; echo exit $?' 2>&1 | filecheck %s --check-prefix=FLAG
//
// Bad input: exit status 1.
// RUN: bash -c 'oi-opt %t.nonexistent.mlir; echo exit $?' 2>&1 | filecheck %s --check-prefix=NOFILE
// RUN: bash -c 'oi-opt %S/Inputs/bad_graph.mlir; echo exit $?' 2>&1 | filecheck %s --check-prefix=BADIR
// RUN: bash -c 'oi-opt %S/Inputs/bad_graph.oi; echo exit $?' 2>&1 | filecheck %s --check-prefix=BADOI
// lit's `not` sees a failure too.
// RUN: not oi-opt %s --bogus

oi.graph @g {
  oi.var volatile @y : f32
  oi.block @entry {
    oi.return
  }
}

// FLAG:      oi-opt: error: unrecognized arguments: --bogus
// FLAG-NEXT: exit 2

// OPTION:      oi-opt: error: invalid pass pipeline 'canonicalize{nosuch=1}': {{.*}}nosuch
// OPTION-NEXT: exit 2
// PASS:        oi-opt: error: invalid pass pipeline 'canonicalize,nosuch': Unrecognized passes: ['nosuch']
// PASS-NEXT:   exit 2
// NOARG:       oi-opt: error: argument -p: expected one argument
// NOARG-NEXT:  exit 2
// TARGET:      oi-opt: error: unknown target 'spirv' (available: mlir, llvm, ptx)
// TARGET-NEXT: exit 2
// PLUGIN:      oi-opt: error: cannot load pass plugin {{.*}}nonexistent.py: no such file
// PLUGIN-NEXT: exit 2

// NOFILE:      {{.*}}nonexistent.mlir: error: cannot read input: No such file or directory
// NOFILE-NEXT: exit 1
// BADIR:       {{.*}}bad_graph.mlir:4:5: error: cache table K requires indices
// BADIR-NEXT:  exit 1
// BADOI:       {{.*}}bad_graph.oi:3:23: error: cache table K requires indices
// BADOI-NEXT:  exit 1
