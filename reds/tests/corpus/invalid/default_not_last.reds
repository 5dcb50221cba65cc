// refused: `default` must be the last switch arm
public func F(x: Int32) -> Void {
  switch x {
    default:
      break;
    case 1:
      break;
  }
}
