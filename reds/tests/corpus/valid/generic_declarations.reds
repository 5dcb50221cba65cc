// dialect: 1.0
// Type parameters on classes and functions (1.0).
public class Box<T> {
  public let value: T;

  public func Get() -> T = this.value
}

public class Pair<+A, -B extends IScriptable> {
  public let first: A;
  public let second: B;
}

public func Identity<T>(x: T) -> T = x

public func Pick<A, B>(a: A, b: B) -> A {
  return a;
}
