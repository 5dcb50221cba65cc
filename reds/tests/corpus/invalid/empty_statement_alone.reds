// refused: `;` alone is not a statement
public func F() -> Void {
  ;
}
