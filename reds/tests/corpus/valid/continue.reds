// dialect: 1.0
// `continue` exists only in 1.0.
public func Odd(xs: array<Int32>) -> Int32 {
  let n = 0;
  for x in xs {
    if x % 2 == 0 {
      continue;
    }
    n += 1;
  }
  return n;
}
