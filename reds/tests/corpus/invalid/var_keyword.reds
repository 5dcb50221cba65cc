// refused: variables are declared with `let`
public func F() -> Void {
  var x = 1;
}
