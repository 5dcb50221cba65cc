// refused: closures use `->`
public func F() -> Void {
  let f = (x) => x;
}
