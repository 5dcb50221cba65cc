// dialect: 0.5
// `a = b = c` (assignment is right-associative in 0.5.x only).
public func Chain() -> Int32 {
  let a: Int32;
  let b: Int32;
  a = b = 3;
  return a;
}
