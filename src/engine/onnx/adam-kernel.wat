;; Adam's update of one weight in place, four float32 values at a time with
;; wasm SIMD, then one at a time for the rest: what the tail's ONNX step
;; applies to each gradient its graph writes. Pointers are byte offsets into
;; the imported memory, where the step keeps its weights, moments and gradient
;; buffers; n counts values. Compiled to adam-kernel-wasm.ts by
;; `npm run build:wasm`; adam-memory.ts instantiates it.
;;   m' = beta1 m + keep1 g                     keep1 = 1 - beta1
;;   v' = beta2 v + keep2 g g                   keep2 = 1 - beta2
;;   w' = w + stepSize m' / (sqrt(v') + epsilonHat)
;; (stepSize and epsilonHat hold the bias corrections: see adam-in-place.ts)
(module
  (import "env" "memory" (memory 0))
  (func (export "adam")
    (param $w i32) (param $m i32) (param $v i32) (param $g i32) (param $n i32)
    (param $beta1 f32) (param $beta2 f32) (param $keep1 f32) (param $keep2 f32)
    (param $stepSize f32) (param $epsilonHat f32)
    (local $at i32) (local $vectorEnd i32) (local $end i32)
    (local $beta1x4 v128) (local $beta2x4 v128) (local $keep1x4 v128) (local $keep2x4 v128)
    (local $stepx4 v128) (local $epsx4 v128)
    (local $gx4 v128) (local $mx4 v128) (local $vx4 v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $beta1x4 (f32x4.splat (local.get $beta1)))
    (local.set $beta2x4 (f32x4.splat (local.get $beta2)))
    (local.set $keep1x4 (f32x4.splat (local.get $keep1)))
    (local.set $keep2x4 (f32x4.splat (local.get $keep2)))
    (local.set $stepx4 (f32x4.splat (local.get $stepSize)))
    (local.set $epsx4 (f32x4.splat (local.get $epsilonHat)))
    ;; $at walks byte offsets from 0; $vectorEnd and $end are byte counts.
    (local.set $vectorEnd (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $vectorsDone
      (loop $vectors
        (br_if $vectorsDone (i32.ge_u (local.get $at) (local.get $vectorEnd)))
        (local.set $gx4 (v128.load (i32.add (local.get $g) (local.get $at))))
        (local.set $mx4
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $at))) (local.get $beta1x4))
            (f32x4.mul (local.get $gx4) (local.get $keep1x4))))
        (local.set $vx4
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $at))) (local.get $beta2x4))
            (f32x4.mul (f32x4.mul (local.get $gx4) (local.get $gx4)) (local.get $keep2x4))))
        (v128.store (i32.add (local.get $m) (local.get $at)) (local.get $mx4))
        (v128.store (i32.add (local.get $v) (local.get $at)) (local.get $vx4))
        (v128.store (i32.add (local.get $w) (local.get $at))
          (f32x4.add
            (v128.load (i32.add (local.get $w) (local.get $at)))
            (f32x4.div
              (f32x4.mul (local.get $mx4) (local.get $stepx4))
              (f32x4.add (f32x4.sqrt (local.get $vx4)) (local.get $epsx4)))))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $vectors)))
    (block $scalarsDone
      (loop $scalars
        (br_if $scalarsDone (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $at))))
        (local.set $ms
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $m) (local.get $at))) (local.get $beta1))
            (f32.mul (local.get $gs) (local.get $keep1))))
        (local.set $vs
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $v) (local.get $at))) (local.get $beta2))
            (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (local.get $keep2))))
        (f32.store (i32.add (local.get $m) (local.get $at)) (local.get $ms))
        (f32.store (i32.add (local.get $v) (local.get $at)) (local.get $vs))
        (f32.store (i32.add (local.get $w) (local.get $at))
          (f32.add
            (f32.load (i32.add (local.get $w) (local.get $at)))
            (f32.div
              (f32.mul (local.get $ms) (local.get $stepSize))
              (f32.add (f32.sqrt (local.get $vs)) (local.get $epsilonHat)))))
        (local.set $at (i32.add (local.get $at) (i32.const 4)))
        (br $scalars)))))
