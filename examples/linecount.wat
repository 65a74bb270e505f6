;; linecount: a WASI command (preview1) that counts the lines and bytes of
;; stdin and prints {"lines":N,"bytes":M} on stdout.
;; A line is a newline-terminated run of bytes, plus an unterminated last one.
;; Rebuild: node scripts/wat2wasm.ts examples/linecount.wat (or wabt's wat2wasm).
;;
;; Memory layout:
;;   0     iovec for fd_read {buf, len}      8  nread
;;   256   5 iovecs for the output           2048-2082 text pieces (data)
;;   2180-2200, 2220-2240  decimal digits    4096-69631 read buffer (64 KiB)
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2 2)
  (data (i32.const 2048) "{\"lines\":")
  (data (i32.const 2064) ",\"bytes\":")
  (data (i32.const 2080) "}\n")

  ;; writes $v in decimal so that it ends at $end; returns where it starts
  (func $utoa (param $v i64) (param $end i32) (result i32)
    loop $digit
      local.get $end
      i32.const 1
      i32.sub
      local.set $end
      local.get $end
      local.get $v
      i64.const 10
      i64.rem_u
      i32.wrap_i64
      i32.const 48
      i32.add
      i32.store8
      local.get $v
      i64.const 10
      i64.div_u
      local.tee $v
      i64.const 0
      i64.ne
      br_if $digit
    end
    local.get $end)

  (func $main (export "_start")
    (local $n i32) (local $i i32) (local $last i32) (local $p i32)
    (local $lines i64) (local $bytes i64)
    ;; as if the input so far ended with a newline: empty input has 0 lines
    i32.const 10
    local.set $last
    block $eof
      loop $read
        i32.const 0
        i32.const 4096
        i32.store
        i32.const 4
        i32.const 65536
        i32.store
        i32.const 0
        i32.const 0
        i32.const 1
        i32.const 8
        call $fd_read
        if
          i32.const 1
          call $proc_exit
        end
        i32.const 8
        i32.load
        local.tee $n
        i32.eqz
        br_if $eof
        local.get $bytes
        local.get $n
        i64.extend_i32_u
        i64.add
        local.set $bytes
        i32.const 0
        local.set $i
        block $scanned
          loop $scan
            local.get $i
            local.get $n
            i32.ge_u
            br_if $scanned
            i32.const 4096
            local.get $i
            i32.add
            i32.load8_u
            local.tee $last
            i32.const 10
            i32.eq
            if
              local.get $lines
              i64.const 1
              i64.add
              local.set $lines
            end
            local.get $i
            i32.const 1
            i32.add
            local.set $i
            br $scan
          end
        end
        br $read
      end
    end
    ;; an unterminated last line counts too
    local.get $last
    i32.const 10
    i32.ne
    if
      local.get $lines
      i64.const 1
      i64.add
      local.set $lines
    end
    ;; {"lines":  N  ,"bytes":  M  }\n  as five iovecs
    i32.const 256
    i32.const 2048
    i32.store
    i32.const 260
    i32.const 9
    i32.store
    local.get $lines
    i32.const 2200
    call $utoa
    local.set $p
    i32.const 264
    local.get $p
    i32.store
    i32.const 268
    i32.const 2200
    local.get $p
    i32.sub
    i32.store
    i32.const 272
    i32.const 2064
    i32.store
    i32.const 276
    i32.const 9
    i32.store
    local.get $bytes
    i32.const 2240
    call $utoa
    local.set $p
    i32.const 280
    local.get $p
    i32.store
    i32.const 284
    i32.const 2240
    local.get $p
    i32.sub
    i32.store
    i32.const 288
    i32.const 2080
    i32.store
    i32.const 292
    i32.const 2
    i32.store
    i32.const 1
    i32.const 256
    i32.const 5
    i32.const 24
    call $fd_write
    if
      i32.const 1
      call $proc_exit
    end)
)
