# all.tcl --
#
#	Runs every tests/*.test file with tcltest and exits 0 only when all of them
#	passed:
#
#	    tclsh tests/all.tcl ?tcltest options?      e.g. -file harness.test -match name*
#
#	Exit status 1 when any test failed, any test file errored ("Test files exiting
#	with errors": a top-level error, a non-zero exit, or any output on stderr of a
#	test file), a test file ended without reporting its results (no cleanupTests
#	summary), or no test ran at all (every test skipped counts as none ran).
#	tcltest's runAllTests alone always lets tclsh exit 0, hence the bookkeeping
#	below.
#
#	By default each test file runs in its own tclsh (tcltest's default); with
#	-singleproc 1 they are sourced into this interpreter instead (then output on
#	stderr goes unnoticed, and a test file calling [exit] fails the run).
#	TCLSMTP_LIBDIR selects the build under test (see support.tcl).

package require Tcl 8.6
package require tcltest 2.5
namespace import ::tcltest::*

namespace eval ::all {
    variable testsdir [file dirname [file normalize [info script]]]
    # Counters as of the final cleanupTests call (which resets them).
    variable totals {Total 0 Passed 0 Skipped 0 Failed 0}
    # Test files started / that printed a summary line (separate-process mode).
    variable started {}
    variable reported {}
    # 1 while test files are sourced into this interpreter (-singleproc 1).
    variable sourcing 0
    variable tmpdir [file join [expr {[info exists ::env(TMPDIR)]
	    && [file isdirectory $::env(TMPDIR)] ? $::env(TMPDIR) : "/tmp"}] \
	    tclsmtp-tests-[pid]]
}

# Snapshot the totals before runAllTests' final [cleanupTests 1] resets them.
proc ::all::OnCleanup {cmd op} {
    variable totals
    if {[llength $cmd] > 1 && [lindex $cmd 1]} {
	set totals [array get ::tcltest::numTests]
    }
}
trace add execution ::tcltest::cleanupTests enter ::all::OnCleanup

# Separate-process mode: note each test file started ([open "| shell file ..."])
# and each summary line parsed ("file.test:\tTotal\tN\tPassed ...").
proc ::all::OnStep {cmd code result op} {
    variable started
    variable reported
    switch -- [lindex $cmd 0] {
	open {
	    set target [lindex $cmd 1]
	    if {[string index $target 0] eq "|"} {
		lappend started [file tail [lindex $target 2]]
	    }
	}
	regexp {
	    if {$code == 0 && $result == 1 && [string match *Total*Failed* [lindex $cmd 1]]} {
		lappend reported [lindex [split [lindex $cmd 2] :] 0]
	    }
	}
    }
}

# A test file sourced into this interpreter must not end the run with [exit].
rename ::exit ::all::RealExit
proc ::exit {{code 0}} {
    if {$::all::sourcing} {
	puts [outputChannel] "all.tcl: a test file called \[exit $code\]; the run is incomplete"
	set code 1
    }
    catch {file delete -force -- $::all::tmpdir}
    ::all::RealExit $code
}

file mkdir $::all::tmpdir
configure -testdir $::all::testsdir -tmpdir $::all::tmpdir {*}$argv

if {[singleProcess]} {
    set ::all::sourcing 1
} else {
    trace add execution ::tcltest::runAllTests leavestep ::all::OnStep
}
set ::all::rc [runAllTests]
set ::all::sourcing 0
catch {trace remove execution ::tcltest::runAllTests leavestep ::all::OnStep}
catch {file delete -force -- $::all::tmpdir}

set ::all::problems {}
if {$::all::rc} {
    lappend ::all::problems "failing tests or test files exiting with errors (see above)"
}
if {[dict get $::all::totals Failed] > 0} {
    lappend ::all::problems "[dict get $::all::totals Failed] test(s) failed"
}
if {[dict get $::all::totals Total] - [dict get $::all::totals Skipped] <= 0} {
    lappend ::all::problems "no test ran\
	    ([dict get $::all::totals Skipped] skipped by constraints or -match/-skip)"
}
set ::all::silent {}
foreach ::all::f $::all::started {
    if {$::all::f ni $::all::reported} {
	lappend ::all::silent $::all::f
    }
}
if {[llength $::all::silent]} {
    lappend ::all::problems "test file(s) ended without reporting results:\
	    [join $::all::silent {, }]"
}

if {[llength $::all::problems]} {
    puts [outputChannel] "\nall.tcl: FAILED: [join $::all::problems {; }]"
    flush [outputChannel]
    exit 1
}
puts [outputChannel] "\nall.tcl: OK ([dict get $::all::totals Total] tests,\
	[dict get $::all::totals Passed] passed,\
	[dict get $::all::totals Skipped] skipped)"
exit 0
