// refused: parameters need a type
public func F(x) -> Void {}
