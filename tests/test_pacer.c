/* tests/test_pacer.c - ws/pacer.c: under pressure from either queue the
 * viewers slow down step by step, are refused only once as slow as they
 * go, and come back to full speed after calm seconds. */
#include "tests/tests.h"
#include "ws/pacer.h"

#define LIVE_BEHIND 2000
#define INTAKE_BEHIND 0

START_TEST(pressure_slows_then_refuses_then_recovers)
{
	struct pacer p;
	int expect = 1;

	pacer_init(&p, LIVE_BEHIND, INTAKE_BEHIND);
	ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), 1);
	ck_assert_int_eq(pacer_refusing(&p), 0);
	/* Donations waiting for the writer: slower each second, never
	 * refusing before the channels are as slow as they go. */
	while (expect < PACER_SLOW_MAX) {
		expect *= 2;
		ck_assert_int_eq(pacer_tick(&p, 0, INTAKE_BEHIND + 1, 0), expect);
		ck_assert_int_eq(pacer_refusing(&p), 0);
	}
	ck_assert_int_eq(pacer_tick(&p, 0, INTAKE_BEHIND + 1, 0), PACER_SLOW_MAX);
	ck_assert_int_eq(pacer_refusing(&p), 1);
	/* Calm: viewers are taken again at once; speed comes back a step
	 * per three calm seconds. */
	ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), PACER_SLOW_MAX);
	ck_assert_int_eq(pacer_refusing(&p), 0);
	for (int step = PACER_SLOW_MAX; step > 1; step /= 2) {
		ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), step);
		ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), step / 2);
		if (step / 2 > 1)
			ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), step / 2);
	}
	ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), 1);
}
END_TEST

START_TEST(each_kind_of_pressure_counts)
{
	struct pacer p;

	pacer_init(&p, LIVE_BEHIND, INTAKE_BEHIND);
	ck_assert_int_eq(pacer_tick(&p, LIVE_BEHIND, INTAKE_BEHIND, 0), 1); /* at, not over */
	ck_assert_int_eq(pacer_tick(&p, LIVE_BEHIND + 1, 0, 0), 2);
	ck_assert_int_eq(pacer_tick(&p, 0, 0, 1), 4); /* live messages were dropped */
	ck_assert_int_eq(pacer_tick(&p, 0, INTAKE_BEHIND + 1, 0), 8);
	/* Pressure resets the calm count. */
	ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), 8);
	ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), 8);
	ck_assert_int_eq(pacer_tick(&p, 0, INTAKE_BEHIND + 1, 0), 16);
	ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), 16);
	ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), 16);
	ck_assert_int_eq(pacer_tick(&p, 0, 0, 0), 8);
}
END_TEST

Suite *pacer_suite(void)
{
	Suite *s = suite_create("pacer");
	TCase *tc = tcase_create("pressure");

	tcase_add_test(tc, pressure_slows_then_refuses_then_recovers);
	tcase_add_test(tc, each_kind_of_pressure_counts);
	suite_add_tcase(s, tc);
	return s;
}
