// refused: annotations need parentheses
@wrapMethod
public func F() -> Void {}
