// dialect: 1.0
// 1.0 closures with expression and block bodies.
public func Closures() -> Int32 {
  let inc = (x: Int32) -> x + 1;
  let add = (a, b) -> {
    return a + b;
  };
  let zero = () -> 0;
  return inc(add(1, zero()));
}
