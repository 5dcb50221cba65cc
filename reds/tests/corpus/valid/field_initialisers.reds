// dialect: both
// Fields (and a global) with default values.
let g_counter: Int32 = 0;

public class Settings {
  public let enabled: Bool = false;
  private let m_count: Int32 = 3;
  protected let m_label: String = "none";
  public let scale: Float = 1.5;
  public let tags: array<String>;
}
