// dialect: 0.5
// Negative enum values (0.5.x lexes `-1` as one literal).
enum Delta {
  Down = -1,
  Up = 1
}
