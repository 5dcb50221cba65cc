// dialect: both
// Function bodies written as `= expr`, with and without a trailing `;`.
public func IsReady() -> Bool = true

public func Twice(x: Int32) -> Int32 = x * 2;

public class Meter {
  private let m_value: Float;

  public func Value() -> Float = this.m_value
  public func IsFull() -> Bool = this.m_value >= 1.0;
}
