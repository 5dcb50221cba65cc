// refused: one variable per `let`
public func F() -> Void {
  let x: Int32 = 1, y = 2;
}
