"""The course's other labs, A-D, on the engine (docs/labs.md):

    Lab A  bayesnet.py (discrete Bayesian networks with do(), numpy only), student_network.py
    Lab B  logreg.py    multinomial logistic regression, gradient and optimizers by hand
    Lab C  mlp.py       an MLP with backpropagation by hand
    Lab D  mnist.py     MNIST by hand: linear, tanh and ReLU networks

What B-D share: handgrad.py (softmax MLPs with their backward pass by hand, a gradient plug),
handopt.py (SGD and Adam written out, an optimizer plug), classify.py (sweeps kept in run folders,
best epochs, tables). commands.py holds each lab's command-line options without importing JAX.

Nothing is imported here, so `import jaxtrainer.labs.bayesnet` loads numpy alone.
"""
