// dialect: 0.5
// `default` and `case` are tokens in 1.0, plain names in 0.5.x.
public class Legacy {
  public let default: Int32;

  public func Get() -> Int32 {
    return this.default;
  }
}
