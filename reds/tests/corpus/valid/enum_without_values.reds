// dialect: 1.0
// Enum variants without `= value` (1.0).
enum Color {
  Red,
  Green = 2,
  Blue,
}
