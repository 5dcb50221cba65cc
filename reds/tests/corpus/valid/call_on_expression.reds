// dialect: 1.0
// Calling the result of a call, an index or a method (1.0).
public func Maker() -> Int32 {
  let fs = [(x: Int32) -> x];
  Maker()();
  fs[0](1);
  return 0;
}
