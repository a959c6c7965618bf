"""The course's other labs, A-D, on the engine (docs/labs.md): A in bayesnet.py and
student_network.py (numpy only), B-D in logreg.py, mlp.py and mnist.py, sharing handgrad.py,
handopt.py and classify.py; commands.py holds their options. Nothing is imported here, so that
`import jaxtrainer.labs.bayesnet` loads numpy alone.
"""
