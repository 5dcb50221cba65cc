// refused: no `++`
public func F(i: Int32) -> Void {
  i++;
}
