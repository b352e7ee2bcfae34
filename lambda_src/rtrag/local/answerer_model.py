"""The local answerer's model: weights of ``ExtractiveAnswerer.features``, in order,
fitted by ``eval/fit_answerer.py --write`` on 92 tuning questions (eval/tuning_questions.jsonl).
Do not edit by hand."""

# Which sentence holds the answer (a logistic score; the highest wins).
SELECT = (3.0768, 1.3535, -0.9287, -0.4406, 0.0407, 0.9242, 2.4843, 0.0000, 0.5346, 1.7478, 0.1855, -0.1107, -4.7781)
# Whether the selected sentence answers the question part at all: answer when the probability reaches THRESHOLD.
ANSWER = (1.1485, 0.1780, -0.2835, -0.0638, 0.9975, -0.2145, 0.9185, 0.0000, 0.3605, 0.3861, -0.9877, -0.0980, -0.6387)
THRESHOLD = 0.50
