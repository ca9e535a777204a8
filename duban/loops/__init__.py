"""The six supervision loops, one package each (daily, weekly, monthly, quarterly, annual,
lookback): what is particular to a loop. They do not import each other (an import contract);
what two loops share lives below them (queries, notices, workbooks, rules).
"""
